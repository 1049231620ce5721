/* The console's live pages: what htmx polls (hx-trigger="every Ns", see templates/admin/) and what
 * the interactive chart fetches report here, and #live-status says when the page last updated
 * or since when the connection is lost. A file, not an inline script: the Content-Security-Policy
 * runs scripts from this server only. */
(function () {
  "use strict";

  function clock(moment) {
    return moment.toISOString().slice(11, 19) + "Z";
  }

  function status() {
    return document.getElementById("live-status");
  }

  function every(element) {
    return element.dataset.refreshSeconds || "5";
  }

  let lostSince = null;

  function ok() {
    const element = status();
    if (!element) return;
    lostSince = null;
    element.classList.remove("live-lost");
    element.querySelector(".live-text").textContent =
      "Live: updated " + clock(new Date()) + ", refreshing every " + every(element) + " s";
  }

  function lost(reason) {
    const element = status();
    if (!element) return;
    lostSince = lostSince || new Date();
    element.classList.add("live-lost");
    element.querySelector(".live-text").textContent =
      "Connection lost since " + clock(lostSince) + " (" + reason + "); retrying every " +
      every(element) + " s. What is shown may be out of date.";
  }

  window.consoleLive = { ok: ok, lost: lost };

  // The status is hidden in the page as drawn: a browser without JavaScript refreshes nothing.
  function reveal() {
    const element = status();
    if (element) element.hidden = false;
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", reveal);
  else reveal();

  function live(event) {
    const element = event.detail && event.detail.elt;
    return element && element.classList && element.classList.contains("live");
  }

  // A list with rows selected for an action is left alone until the action is done.
  document.addEventListener("htmx:confirm", function (event) {
    if (live(event) && event.detail.elt.querySelector("input.action-select:checked")) {
      event.preventDefault();
    }
  });
  // What each live element last swapped in: an answer that has not changed is not swapped again.
  const lastAnswer = new WeakMap();

  document.addEventListener("htmx:beforeSwap", function (event) {
    if (!live(event)) return;
    const xhr = event.detail.xhr;
    // A signed-out session is redirected to the login form: never swap that into the page.
    if (xhr && xhr.responseURL && xhr.responseURL.indexOf("/login/") !== -1) {
      event.detail.shouldSwap = false;
      lost("signed out: sign in again");
      return;
    }
    if (lastAnswer.get(event.detail.elt) === event.detail.serverResponse) {
      event.detail.shouldSwap = false;
    }
    lastAnswer.set(event.detail.elt, event.detail.serverResponse);
  });
  // A list's new rows get the admin's action handlers (select all, the selection counter), which
  // Django's actions.js binds once when the page loads.
  document.addEventListener("htmx:afterSwap", function (event) {
    if (!live(event) || typeof window.Actions !== "function") return;
    const boxes = event.detail.elt.querySelectorAll("tr input.action-select");
    // The counter's "of N" is the rows on the page, written when the page was drawn.
    const counter = document.querySelector(".action-counter");
    if (counter) counter.dataset.actionsIcnt = String(boxes.length);
    if (boxes.length) window.Actions(boxes);
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    if (!live(event)) return;
    const xhr = event.detail.xhr;
    if (event.detail.successful && !(xhr && xhr.responseURL.indexOf("/login/") !== -1)) {
      ok();
    } else if (xhr && xhr.status) {
      lost("the server answered " + xhr.status);
    }
  });
  document.addEventListener("htmx:sendError", function (event) {
    if (live(event)) lost("the server cannot be reached");
  });
  document.addEventListener("htmx:timeout", function (event) {
    if (live(event)) lost("the server did not answer in time");
  });
})();

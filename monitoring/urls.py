from django.urls import path

from monitoring import views

urlpatterns = [
    path("api/health", views.HealthView.as_view(), name="health"),
    path("api/health/detail", views.HealthDetailView.as_view(), name="health-detail"),
    path("api/alerts", views.AlertListView.as_view(), name="alerts"),
    path(
        "api/alerts/<int:pk>/acknowledge",
        views.AlertAcknowledgeView.as_view(),
        name="alert-acknowledge",
    ),
    path("metrics", views.metrics, name="metrics"),
]

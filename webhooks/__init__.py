"""Blueprints facing the messaging providers and the load balancer."""
from webhooks.health import bp as health_bp
from webhooks.twilio import bp as twilio_bp

__all__ = ["health_bp", "twilio_bp"]

"""Blueprints facing the messaging providers and the load balancer."""
from webhooks.health import bp as health_bp
from webhooks.kannel import bp as kannel_bp
from webhooks.twilio import bp as twilio_bp

__all__ = ["health_bp", "kannel_bp", "twilio_bp"]

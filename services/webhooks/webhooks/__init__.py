"""The webhooks service: endpoints, subscriptions, deliveries and attempts."""

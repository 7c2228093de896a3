"""Putting notifications into a store: its topics, the outbox its flushes fill and the Subscription listener."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .endpoints import EndpointPolicy
from .outbox import Outbox
from .subscriptions import SubscriptionListener
from .topics import TopicBook

if TYPE_CHECKING:
    from ..config import Settings
    from ..store.services import StoreServices
    from .delivery import DeliverySettings


def install_events(services: StoreServices, endpoints: EndpointPolicy | None = None) -> SubscriptionListener:
    """Load the topics, record their events at every flush and check Subscriptions as they are written."""
    topics = TopicBook.load(services.project_base)
    services.topics = topics
    services.outbox = Outbox(topics)
    listener = SubscriptionListener(topics, endpoints or EndpointPolicy())
    services.listeners.append(listener)
    return listener


def set_endpoint_policy(services: StoreServices, endpoints: EndpointPolicy) -> None:
    """Use a deployment's endpoint rules (from its settings) for the Subscriptions written through it."""
    for listener in services.listeners:
        if isinstance(listener, SubscriptionListener):
            listener.endpoints = endpoints


def endpoint_policy(settings: Settings) -> EndpointPolicy:
    return EndpointPolicy(allow_private=settings.subscription_allow_private,
                          allow_http=settings.subscription_allow_http)


def delivery_settings(settings: Settings) -> DeliverySettings:
    from .delivery import DeliverySettings

    return DeliverySettings(retry_horizon_s=settings.subscription_retry_hours * 3600,
                            retry_max_delay_s=settings.subscription_retry_max_delay_s,
                            endpoints=endpoint_policy(settings))

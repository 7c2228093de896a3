"""Notifications: topics, the transactional outbox, Subscriptions and the delivery worker.

Imports server.store, server.fhir, server.security and server.config; imported only by StoreServices.build
(the outbox and Subscription listener), the API's Subscription operations, the app and the CLI."""

"""Transports: how an emission reaches the inboxes of its receivers.

This package holds the pieces of the asynchronous (float-time) transport that stand on
their own: :mod:`~neurosim.engine.transport.events`, the event queue ordered by the
total order of clause A5, and :mod:`~neurosim.engine.transport.jitter`, the
counter-based per-message jitter of clause A2 (see ``docs/async.md``). It imports
nothing from the rest of the engine.
"""

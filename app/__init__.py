"""supportbot: grounded AI customer-service answers.

``from app import AICustomerServiceChatbot, Channel, TicketPriority, MultiChannelIntegration``
"""

from typing import Any

__all__ = ["AICustomerServiceChatbot", "Channel", "MultiChannelIntegration", "TicketPriority"]


def __getattr__(name: str) -> Any:
    # Lazy, so importing a submodule (the CLI, the API) doesn't build the facade's imports.
    if name in __all__:
        from app import facade

        return getattr(facade, name)
    raise AttributeError(name)

"""Services: what the API, the channels and the Python facade call (store + responder)."""

"""Request handlers, one module per area; each exports HANDLERS: dict[ApiKey, handler]."""

"""The gateway: the platform's only public face (auth, scopes, rate limits, forwarding)."""

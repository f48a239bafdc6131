"""The console: server-rendered pages at `/console` for tenants (signed in with an API key)
and the operator (signed in with the admin token), reading through the services the way the
forwarding does. See docs/console.md."""

"""The webhooks service's use cases, by aggregate: `endpoints` and `deliveries` (where
`deliver`, one attempt of a delivery and its verdict, lives)."""

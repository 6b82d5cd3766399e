"""Stage ④: surfaces built from a model version: each combines candidates, ranking and re-ranking rules, and
explains every item. Pure functions of (version, request): the HTTP layer, precomputation and exposure logging
wrap them."""

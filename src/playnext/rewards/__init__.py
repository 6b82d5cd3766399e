"""Named, versioned reward definitions: what counts as a good outcome of showing an item."""

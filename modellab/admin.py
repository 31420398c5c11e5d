"""Read-mostly admin for the model lab's tables (writes go through the services)."""

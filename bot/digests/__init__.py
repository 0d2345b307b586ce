"""Daily digests, weekly stakeholder updates and the coordinators' "your day" DM."""

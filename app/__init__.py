"""The composition root: builds the Bolt app, the web server, the worker and the CLI from settings.
Nothing in bot/, handlers/, storage/ or integrations/ imports it."""

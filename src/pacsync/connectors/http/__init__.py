"""HTTP endpoints pacsync calls: webhook receivers (``webhooks.HttpWebhookSender``)."""

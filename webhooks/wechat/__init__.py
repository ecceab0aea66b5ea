"""WeChat Official Account (公众号): plaintext and safe-mode callbacks, customer-service send."""

"""Feishu/Lark (飞书): event decryption and signatures, custom bot signing."""

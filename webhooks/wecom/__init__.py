"""WeCom (企业微信) self-built app: callback crypto now, the view and client in later steps."""

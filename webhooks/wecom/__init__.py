"""WeCom (企业微信) self-built app: callback crypto, the callback view, active send.

``front`` holds the inbound pipeline WeCom and WeChat share (parse, inbox, dialog, reply).
"""

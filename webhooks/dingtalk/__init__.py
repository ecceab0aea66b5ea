"""DingTalk (钉钉): enterprise robot inbound signatures and custom robot outbound signing."""

"""webhooks/xmlsafe.py, shared by WeCom and WeChat: the platforms' XML parsed flat, every
attack shape (DTD, entities, XXE, oversize, deep, malformed) refused as one BadXml, and reply
XML that always parses back to what was written."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webhooks.errors import BadXml, WebhookError
from webhooks.xmlsafe import MAX_DEPTH, MAX_XML_BYTES, build_xml, cdata, parse_xml

# platforms.md §2.4: the POST envelope of a WeCom callback.
ENVELOPE = (
    b"<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>"
    b"<Encrypt><![CDATA[RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wv==]]></Encrypt>"
    b"<AgentID><![CDATA[218]]></AgentID></xml>"
)
TEXT_MESSAGE = (
    "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>\n"
    "<FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName>\n"
    "<CreateTime>1409735668</CreateTime>\n<MsgType><![CDATA[text]]></MsgType>\n"
    "<Content><![CDATA[楼道里的灯坏了好几天了]]></Content>\n<MsgId>6054768590064713728</MsgId>\n</xml>"
)
SCAN_EVENT = (
    "<xml><ToUserName><![CDATA[corp]]></ToUserName><FromUserName><![CDATA[u1]]></FromUserName>"
    "<CreateTime>1408090816</CreateTime><MsgType><![CDATA[event]]></MsgType>"
    "<Event><![CDATA[scancode_push]]></Event><EventKey><![CDATA[6]]></EventKey>"
    "<ScanCodeInfo><ScanType><![CDATA[qrcode]]></ScanType>"
    "<ScanResult><![CDATA[1]]></ScanResult></ScanCodeInfo>"
    "<SendPicsInfo><Count>2</Count><PicList><item><PicMd5Sum><![CDATA[aaa]]></PicMd5Sum></item>"
    "<item><PicMd5Sum><![CDATA[bbb]]></PicMd5Sum></item></PicList></SendPicsInfo>"
    "<AgentID>1</AgentID></xml>"
)


# ---- parsing ------------------------------------------------------------------------------------
def test_envelope_parsed_flat() -> None:
    fields = parse_xml(ENVELOPE)
    assert fields == {
        "ToUserName": "wx5823bf96d3bd56c7",
        "Encrypt": "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wv==",
        "AgentID": "218",
    }


def test_text_message_str_or_bytes() -> None:
    expected = {
        "ToUserName": "gh_10f6c3c3ac5a",
        "FromUserName": "oyORnuP8q7ou2gfYjqLzSIWZf0rs",
        "CreateTime": "1409735668",
        "MsgType": "text",
        "Content": "楼道里的灯坏了好几天了",
        "MsgId": "6054768590064713728",
    }
    assert parse_xml(TEXT_MESSAGE) == expected
    assert parse_xml(TEXT_MESSAGE.encode()) == expected


def test_nested_leaves_by_dotted_path_first_repeat_wins() -> None:
    fields = parse_xml(SCAN_EVENT)
    assert fields["ScanCodeInfo.ScanType"] == "qrcode"
    assert fields["SendPicsInfo.Count"] == "2"
    assert fields["SendPicsInfo.PicList.item.PicMd5Sum"] == "aaa"
    assert fields["AgentID"] == "1"


def test_empty_and_self_closing_elements_are_empty_strings() -> None:
    assert parse_xml("<xml><A/><B></B><C><![CDATA[]]></C></xml>") == {"A": "", "B": "", "C": ""}


def test_utf16_with_bom_is_still_xml() -> None:
    # Well-formed, only an unusual encoding: nothing to refuse (the platforms send UTF-8).
    assert parse_xml("<xml><A>春</A></xml>".encode("utf-16")) == {"A": "春"}


def test_plain_text_escapes_are_decoded() -> None:
    # The five predefined entities and character references are not DTD entities.
    assert parse_xml("<xml><A>a &lt;b&gt; &amp; &#26149;</A></xml>") == {"A": "a <b> & 春"}


def test_limit_is_checked_on_bytes_before_parsing() -> None:
    padding = "灯" * ((MAX_XML_BYTES - 40) // 3)
    doc = f"<xml><Content>{padding}</Content></xml>"
    assert len(doc.encode()) <= MAX_XML_BYTES
    assert parse_xml(doc)["Content"] == padding
    with pytest.raises(BadXml) as info:
        parse_xml(doc.replace("</Content>", "灯</Content>" * 20))
    assert info.value.reason == "too_large"
    with pytest.raises(BadXml) as info:
        parse_xml(b"<xml/>" + b" " * MAX_XML_BYTES)  # even whitespace counts
    assert info.value.reason == "too_large"
    with pytest.raises(BadXml):
        parse_xml(ENVELOPE, max_bytes=len(ENVELOPE) - 1)


# ---- attacks and malformed input ----------------------------------------------------------------
BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<xml><Content>&lol3;</Content></xml>"""
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<xml><Content>&xxe;</Content></xml>"""
PARAMETER_ENTITY = b"""<!DOCTYPE xml [<!ENTITY % p SYSTEM "http://127.0.0.1/x.dtd"> %p;]><xml/>"""
EXTERNAL_DTD = b"""<!DOCTYPE xml SYSTEM "http://127.0.0.1/x.dtd"><xml><A>1</A></xml>"""
BARE_DOCTYPE = b"<!DOCTYPE xml><xml><A>1</A></xml>"


@pytest.mark.parametrize(
    "doc",
    [BILLION_LAUGHS, XXE, PARAMETER_ENTITY, EXTERNAL_DTD, BARE_DOCTYPE],
    ids=["billion-laughs", "xxe", "parameter-entity", "external-dtd", "bare-doctype"],
)
def test_dtd_and_entities_refused(doc: bytes) -> None:
    with pytest.raises(BadXml) as info:
        parse_xml(doc)
    assert info.value.reason == "dtd_forbidden"


@pytest.mark.parametrize(
    "doc",
    [
        b"",
        b"   ",
        b"not xml",
        b"<xml>",
        b"<xml><A>1</B></xml>",
        b"<xml><A>1</A></xml><xml/>",
        b"<xml>\x00</xml>",
        "<xml><A>\ud800</A></xml>",
        b"<xml><A>\xc3\x28</A></xml>",  # invalid UTF-8
        b'<?xml version="1.0" encoding="gbk"?><xml/>',  # expat cannot do multi-byte codecs
        b'<?xml version="1.0" encoding="no-such-codec"?><xml/>',
        b'<?xml version="1.0" encoding="utf-16"?><xml/>',
        b"<xml><A>&undefined;</A></xml>",
    ],
)
def test_malformed_refused(doc: bytes | str) -> None:
    with pytest.raises(BadXml) as info:
        parse_xml(doc)
    assert info.value.reason == "malformed"


@pytest.mark.parametrize("doc", [b"<root><A>1</A></root>", b'<xml xmlns="urn:x"><A>1</A></xml>'])
def test_unexpected_root_refused(doc: bytes) -> None:
    with pytest.raises(BadXml) as info:
        parse_xml(doc)
    assert info.value.reason == "unexpected_root"


def test_depth_limit_and_no_recursion_error() -> None:
    ok = "<xml>" + "<a>" * MAX_DEPTH + "x" + "</a>" * MAX_DEPTH + "</xml>"
    assert parse_xml(ok) == {".".join(["a"] * MAX_DEPTH): "x"}
    for depth in (MAX_DEPTH + 1, 5000):  # 5000 would overflow a recursive walk
        doc = "<xml>" + "<a>" * depth + "</a>" * depth + "</xml>"
        with pytest.raises(BadXml) as info:
            parse_xml(doc)
        assert info.value.reason == "too_deep"


def test_not_bytes_refused() -> None:
    with pytest.raises(BadXml):
        parse_xml(None)  # type: ignore[arg-type]


@given(st.binary(max_size=300))
def test_random_bytes_only_bad_xml(data: bytes) -> None:
    try:
        assert isinstance(parse_xml(b"<xml>" + data + b"</xml>"), dict)
    except WebhookError as exc:
        assert isinstance(exc, BadXml)
    try:
        parse_xml(data)
    except BadXml:
        pass


_XMLISH = st.text(alphabet="<>/![]CDAT-?&;#x=\"' xmlA\n\ud800é春", max_size=120)


@given(_XMLISH)
def test_xml_like_text_only_bad_xml(text: str) -> None:
    try:
        fields = parse_xml(text)
    except BadXml:
        return
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in fields.items())


# ---- building replies ---------------------------------------------------------------------------
def test_text_reply_matches_platform_format() -> None:
    reply = build_xml(
        {
            "ToUserName": "openid",
            "FromUserName": "gh_id",
            "CreateTime": 1714037059,
            "MsgType": "text",
            "Content": "已收到",
        }
    )
    # platforms.md §3 passive reply
    assert reply == (
        "<xml><ToUserName><![CDATA[openid]]></ToUserName><FromUserName><![CDATA[gh_id]]>"
        "</FromUserName><CreateTime>1714037059</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        "<Content><![CDATA[已收到]]></Content></xml>"
    )


def test_cdata_terminator_in_text_cannot_escape() -> None:
    hostile = "a]]><MsgType>image</MsgType><![CDATA[b"
    reply = build_xml({"Content": hostile, "MsgType": "text"})
    assert parse_xml(reply) == {"Content": hostile, "MsgType": "text"}
    assert cdata("]]>") == "<![CDATA[]]]]><![CDATA[>]]>"


def test_nested_mapping_for_media_replies() -> None:
    reply = build_xml({"MsgType": "image", "Image": {"MediaId": "m1"}})
    assert reply == (
        "<xml><MsgType><![CDATA[image]]></MsgType>"
        "<Image><MediaId><![CDATA[m1]]></MediaId></Image></xml>"
    )
    assert parse_xml(reply) == {"MsgType": "image", "Image.MediaId": "m1"}


def test_control_characters_and_carriage_returns_normalized() -> None:
    reply = build_xml({"Content": "a\x00b\x1bc\r\nd\re\ud800f\ufffeg"})
    assert parse_xml(reply) == {"Content": "abc\nd\nefg"}


@pytest.mark.parametrize("tag", ["", "1abc", "a b", "a<b", "内容", "x:y"])
def test_bad_tag_names_are_programming_errors(tag: str) -> None:
    with pytest.raises(ValueError):
        build_xml({tag: "x"})
    with pytest.raises(ValueError):
        build_xml({"A": "x"}, root=tag)


@pytest.mark.parametrize("value", [True, 1.5, None, b"bytes", ["list"]])
def test_unsupported_values_are_programming_errors(value: object) -> None:
    with pytest.raises(TypeError):
        build_xml({"A": value})  # type: ignore[dict-item]


@given(st.text(), st.integers(min_value=0, max_value=2**63))
def test_build_then_parse_round_trip(text: str, number: int) -> None:
    fields = parse_xml(build_xml({"Content": text, "CreateTime": number}))
    expected = "".join(
        c
        for c in text.replace("\r\n", "\n").replace("\r", "\n")
        if c in "\t\n" or (" " <= c <= "\ud7ff") or ("\ue000" <= c <= "\ufffd") or c > "\uffff"
    )
    assert fields == {"Content": expected, "CreateTime": str(number)}

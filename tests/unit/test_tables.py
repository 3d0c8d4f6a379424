from lwcnn.tables import format_table


def test_format_table_aligns_and_formats():
    rows = [{"name": "lw@0.35", "f": 27.41, "d": -2.3}, {"name": "resnetv2-50", "f": 15934.8, "d": None}]
    text = format_table(rows, [("name", "model"), ("f", "F (M)", ".1f"), ("d", "dF %", "+.1f")])
    lines = text.splitlines()
    assert lines[0].split() == ["model", "F", "(M)", "dF", "%"]
    assert lines[2].split() == ["lw@0.35", "27.4", "-2.3"]
    assert lines[3].split() == ["resnetv2-50", "15934.8", "-"]
    assert lines[2].index("27.4") + len("27.4") == lines[3].index("15934.8") + len("15934.8")

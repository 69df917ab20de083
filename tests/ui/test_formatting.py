"""nin_course/ui/formatting.py: byte counts and counts, against hand-written strings."""
from nin_course.ui.formatting import format_bytes, format_count


def test_formatting_against_hand_written_strings():
    assert [format_bytes(n) for n in (512, 1536, 3 * 2**20, 2**31, None)] == [
        "512 B", "1.50 KiB", "3.00 MiB", "2.00 GiB", "n/a"]
    assert [format_count(n) for n in (224, 1_992_166, 1_524_594_704, 110_592)] == [
        "224", "1.99 M", "1.52 G", "111 k"]




def test_formatting_signs_and_the_largest_units():
    assert format_bytes(-1536) == "-1.50 KiB" and format_bytes(5 * 2**40) == "5.00 TiB"
    assert format_count(999) == "999" and format_count(999.6) == "1 k"
    assert format_count(2e12) == "2 T" and format_count(float("nan")) == "n/a"

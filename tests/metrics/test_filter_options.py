from metrics.templatetags.filter_options import option_tags


def test_option_tags_escape_values_and_labels_and_mark_the_selected():
    html = option_tags([("1", "Ana <Ops> & Co", False), ('2"', "Bo's", True)])
    assert html == (
        '<option value="1">Ana &lt;Ops&gt; &amp; Co</option>'
        '<option value="2&quot;" selected>Bo&#x27;s</option>'
    )


def test_option_tags_of_no_choices_is_empty():
    assert option_tags([]) == ""

def test_a_numbered_page_keeps_the_other_parameters_for_its_links(rf):
    from revops.pagination import page_of

    request = rf.get("/x", {"page": "9", "format": "csv", "status": "open", "q": "a b"})
    page, query = page_of(request, list(range(30)), 25, drop=("format",))
    assert (page.number, list(page.object_list)) == (2, list(range(25, 30)))  # past the end
    assert query == "status=open&q=a+b"

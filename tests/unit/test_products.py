"""Catalogue product columns: read from the CSV, checked, kept apart from attributes, refused when malformed."""

from __future__ import annotations

import pytest

from visual_search.core.catalogue_csv import read_catalogue_csv
from visual_search.core.errors import InvalidRequestError
from visual_search.core.products import checked_product_url, product_from_columns
from visual_search.core.records import Product


def write_csv(tmp_path, text: str):
    path = tmp_path / "labels.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_product_columns_become_the_product_and_other_columns_stay_attributes(tmp_path):
    csv_path = write_csv(
        tmp_path,
        (
            "path,label,title,price,currency,product_url,brand,colour\n"
            "a.jpg,Shoes,Canvas sneaker,59.90,eur,https://shop.example/p/1,Northwind,red\n"
            "b.jpg,Hat,,,,,,\n"
        ),
    )
    first, second = read_catalogue_csv(csv_path)
    assert first.product == Product(
        title="Canvas sneaker", price=59.9, currency="EUR", product_url="https://shop.example/p/1", brand="Northwind"
    )
    assert first.attributes == {"colour": "red"}
    assert second.product.is_empty and second.attributes == {}


@pytest.mark.parametrize(
    "url, problem",
    [
        ("javascript:alert(1)", "http:// or https://"),
        ("ftp://shop.example/p/1", "http:// or https://"),
        ("//shop.example/p/1", "http:// or https://"),
        ("https://", "no host"),
        ("https://shop.example/a b", "spaces"),
        ("https://shop.example:99999/p", "well-formed"),
        ("https://shop.example@evil.example/p", "user name"),
        ("https://[::1/p", "well-formed"),
    ],
)
def test_a_malformed_product_url_is_refused_with_its_reason(url, problem):
    with pytest.raises(InvalidRequestError) as raised:
        checked_product_url(url)
    assert problem in raised.value.message


def test_a_malformed_row_refuses_the_whole_csv_and_names_its_line(tmp_path):
    csv_path = write_csv(
        tmp_path,
        (
            "path,label,product_url\n"
            "a.jpg,Shoes,https://shop.example/p/1\n"
            "b.jpg,Shoes,javascript:alert(document.cookie)\n"
        ),
    )
    with pytest.raises(InvalidRequestError) as raised:
        read_catalogue_csv(csv_path)
    assert "line 3" in raised.value.message and "product_url" in raised.value.message


@pytest.mark.parametrize(
    "columns, problem",
    [
        ({"price": "19,99", "currency": "EUR"}, "not a number"),
        ({"price": "-5", "currency": "EUR"}, "not a number"),
        ({"price": "€5", "currency": "EUR"}, "not a number"),
        ({"price": "19.99"}, "needs a currency"),
        ({"price": "19.99", "currency": "euro"}, "ISO 4217"),
        ({"title": "x" * 301}, "longer than 300"),
    ],
)
def test_malformed_prices_currencies_and_titles_are_refused(columns, problem):
    with pytest.raises(InvalidRequestError) as raised:
        product_from_columns(columns, where="labels.csv, line 2")
    assert problem in raised.value.message and raised.value.message.startswith("labels.csv, line 2: ")


def test_product_dict_round_trip_keeps_every_field():
    product = Product(title="Wool coat", price=120.0, currency="GBP", product_url="http://shop.example/c", brand="Fen")
    assert Product.from_dict(product.as_dict()) == product
    assert Product.from_dict(None) == Product()

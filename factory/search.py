"""Product search: words matched in prompt, notes and tag names, through indexes.

Each word must appear somewhere (like the admin's own search): in the
prompt, the notes or the name of one of the product's tags, ignoring case.
The match is ``icontains`` on every database. On PostgreSQL, migration 0005
adds pg_trgm GIN indexes on ``UPPER(prompt)`` and ``UPPER(notes)``, the very
expressions ``icontains`` compares there, so a word is found through the
index instead of a scan of every prompt. Tags are matched by product id,
never joined, so a product with several tags is never repeated and the
grid needs no DISTINCT over its columns.
"""
from django.db import connections
from django.db.models import BooleanField, F, Func, Q, QuerySet
from django.utils.text import smart_split, unescape_string_literal

from factory.models import Product


def search_words(term: str) -> list[str]:
    """The words of a search, quoted phrases kept whole, as the admin splits them."""
    words = []
    for bit in smart_split(term):
        if bit.startswith(('"', "'")) and bit[0] == bit[-1] and len(bit) > 1:
            bit = unescape_string_literal(bit)
        if bit.strip():
            words.append(bit)
    return words


def word_matches(word: str, vendor: str) -> Q:
    """Products whose prompt, notes or a tag's name contains ``word``.

    On PostgreSQL the tagged products come as an array (``id = ANY(ARRAY(…))``,
    read once), which, unlike ``id IN (subquery)``, can be OR-ed with the
    trigram index scans: the planner then reads a rare word through the
    indexes and a common one along the grid's order, stopping at a page.
    """
    tagged = Product.tags.through.objects.filter(tag__name__icontains=word)
    if vendor == "postgresql":
        from django.contrib.postgres.expressions import ArraySubquery

        tag_match = Q(Func(F("pk"), ArraySubquery(tagged.values("product_id")),
                           template="%(expressions)s)", arg_joiner=" = ANY(",
                           output_field=BooleanField()))
    else:
        tag_match = Q(pk__in=tagged.values("product_id"))
    return Q(prompt__icontains=word) | Q(notes__icontains=word) | tag_match


def search_products(queryset: QuerySet[Product], term: str) -> QuerySet[Product]:
    """The products of ``queryset`` matching every word of ``term``."""
    vendor = connections[queryset.db].vendor
    for word in search_words(term):
        queryset = queryset.filter(word_matches(word, vendor))
    return queryset

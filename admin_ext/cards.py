"""The inventory grid's product cards, rendered in Python.

A page of the grid holds 120 cards. Through the template engine each card
cost about 4 ms (nine URL reversals, some sixty variable lookups and
filters), which made the card markup most of the page's CPU. Here the URLs
are reversed once per page and each card is one string join: the grid, the
comparison grid and the curation endpoints that swap a card back in all
call ``card_html`` (or the ``{% product_card %}`` tag), so there is one
markup for a card.
"""
from datetime import datetime
from typing import Any

from django.template.defaultfilters import date as date_filter, floatformat
from django.utils.text import Truncator
from django.urls import reverse
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.timezone import template_localtime

# Stands for the product's id while a URL is reversed once for every card.
_PK = 2_147_480_001
ICONS = {"video": "movie", "audio": "graphic_eq"}


class CardUrls:
    """A card's URLs, reversed once and then filled in with each id."""

    def __init__(self, opts: Any) -> None:
        def split(name: str) -> tuple[str, str]:
            head, _, tail = reverse(name, args=[_PK]).partition(str(_PK))
            return head, tail

        base = f"admin:{opts.app_label}_{opts.model_name}"
        self.change = split(f"{base}_change")
        self.panel = split("admin:factory_product_panel")
        self.rating = split("admin:factory_product_rating")
        self.favorite = split("admin:factory_product_favorite")

    @staticmethod
    def fill(parts: tuple[str, str], pk: int) -> str:
        return escape(f"{parts[0]}{pk}{parts[1]}")


def truncatechars(text: str, length: int) -> str:
    """The ``truncatechars`` filter, without its cost for text that fits."""
    if len(text) <= length:  # combining characters only make text count shorter
        return text
    return Truncator(text).chars(length)


def _yesno(value: Any, yes: str, no: str) -> str:
    return yes if value else no


def card_html(product: Any, urls: CardUrls, can_curate: bool) -> SafeString:
    """One product's card; ``product`` comes from ``for_grid()``."""
    pk = product.pk
    media = product.media
    kind = product.media_type
    thumbnail = escape(media.thumbnail.url) if media.thumbnail else ""
    rating = product.rating
    archived = product.archived_at
    classes = "".join([
        f"af-card af-card--{escape(kind)}",
        " is-favorite" if product.is_favorite else "",
        " is-rated" if rating else "",
        " is-archived" if archived else "",
    ])
    rating_url = urls.fill(urls.rating, pk)
    out = [
        f'<article class="{classes}" id="product-card-{pk}" role="listitem" data-card '
        f'data-pk="{pk}" data-favorite="{_yesno(product.is_favorite, "true", "false")}" '
        f'data-rating="{"" if rating is None else rating}" '
        f'data-panel-url="{urls.fill(urls.panel, pk)}"',
        f' data-rating-url="{rating_url}"' if can_curate else "",
        ' x-data="{ hover: false, playing: false, progress: 0 }"'
        ' x-on:mouseenter="hover = true" x-on:mouseleave="hover = false"'
        f" x-on:click=\"cardClick($event, '{pk}')\""
        f" x-on:dblclick=\"cardDoubleClick($event, '{pk}')\""
        f" x-bind:class=\"{{ 'is-focused': focusedPk === '{pk}', "
        f"'is-selected': selected.includes('{pk}'), 'is-open': panel.pk === '{pk}' }}\""
        ' hx-target="this" hx-swap="outerHTML" hx-params="favorite,rating">',
        f'<a class="af-card__media" href="{urls.fill(urls.change, pk)}"'
        f" x-on:click=\"openCard($event, '{pk}')\" title=\"Open product #{pk}\">",
    ]
    if thumbnail:
        alt = truncatechars(product.prompt, 80) or str(product)
        out.append(f'<img src="{thumbnail}" alt="{escape(alt)}" loading="lazy" '
                   'decoding="async">')
    else:
        out.append('<span class="af-card__missing material-symbols-outlined">'
                   "hide_image</span>")
    if kind == "video":
        poster = f' poster="{thumbnail}"' if thumbnail else ""
        out.append(f'<template x-if="hover"><video src="{escape(media.file.url)}"{poster} '
                   'muted autoplay loop playsinline preload="auto"></video></template>')
    out.append("</a>")
    if kind == "audio":
        out.append(
            f'<audio x-ref="audio" src="{escape(media.file.url)}" preload="none"'
            ' x-on:ended="playing = false; progress = 0"'
            ' x-on:timeupdate="progress = $el.duration ? $el.currentTime / $el.duration : 0">'
            "</audio>"
            '<button type="button" class="af-card__play" title="Play or pause"'
            ' x-on:click.stop="playing ? $refs.audio.pause() : $refs.audio.play(); '
            'playing = !playing">'
            '<span class="material-symbols-outlined" x-text="playing ? \'pause\' : '
            '\'play_arrow\'">play_arrow</span></button>'
            '<span class="af-card__track" title="Click or drag to jump" data-track'
            " x-on:click.stop x-on:dblclick.stop"
            ' x-on:pointerdown.stop="$el.setPointerCapture($event.pointerId); '
            'seekAudio($refs.audio, $el, $event); playing = true"'
            ' x-on:pointermove="$event.buttons && seekAudio($refs.audio, $el, $event)">'
            "<span class=\"af-card__progress\" x-bind:style=\"'width:' + (progress * 100) + '%'\">"
            "</span></span>"
        )
    out.append(
        '<label class="af-card__select" title="Select (X, Shift-click for a range)" '
        'x-on:click.stop><input type="checkbox" name="_selected_action" '
        f'value="{pk}" class="action-select" x-model="selected" '
        f"x-on:click=\"selectClick($event, '{pk}')\" "
        f'aria-label="Select product #{pk}"></label>'
    )
    if archived:
        when = date_filter(template_localtime(archived) if isinstance(archived, datetime)
                           else archived, "SHORT_DATETIME_FORMAT")
        out.append(f'<span class="af-card__archived" title="Archived {escape(when)}">'
                   "Archived</span>")
    duration = (f"<span>{floatformat(media.duration, 1)} s</span>"
                if media.duration else "")
    out.append(
        f'<span class="af-card__type" title="{escape(product.get_media_type_display())}">'
        f'<span class="material-symbols-outlined">{ICONS.get(kind, "image")}</span>'
        f"{duration}</span>"
    )
    favorite = product.is_favorite
    if can_curate:
        out.append(
            '<button type="button" class="af-card__fav" data-favorite-toggle '
            f'hx-post="{urls.fill(urls.favorite, pk)}" '
            f"hx-vals='{{\"favorite\": \"{_yesno(favorite, 'off', 'on')}\"}}' "
            f'aria-pressed="{_yesno(favorite, "true", "false")}" '
            f'title="{_yesno(favorite, "Remove from favorites", "Add to favorites")} (F)">'
            f'{_yesno(favorite, "★", "☆")}</button>'
        )
    elif favorite:
        out.append('<span class="af-card__fav" aria-label="Favorite">★</span>')
    if rating:
        out.append(f'<span class="af-card__score" aria-label="Rated {rating} of 5">'
                   f"★{rating}</span>")
    out.append('<div class="af-card__info">')
    if product.prompt:
        out.append(f'<p class="af-card__prompt" title="{escape(product.prompt)}">'
                   f"{escape(truncatechars(product.prompt, 160))}</p>")
    seed = f" · seed {product.seed}" if product.seed is not None else ""
    out.append(f'<p class="af-card__meta">{escape(product.machine.name)}{seed}</p>'
               '<div class="af-card__stars" role="group" aria-label="Rating">')
    for n in range(1, 6):
        on = ' class="is-on"' if rating and n <= rating else ' class=""'
        if can_curate:
            value = "" if rating == n else n
            title = "Clear the rating (0)" if rating == n else f"Rate {n} ({n})"
            out.append(f'<button type="button" data-rate="{n}" hx-post="{rating_url}" '
                       f"hx-vals='{{\"rating\": \"{value}\"}}'{on} "
                       f'title="{title}">★</button>')
        else:
            out.append(f"<span{on}>★</span>")
    out.append("</div></div></article>")
    return mark_safe("".join(out))


def cards_html(products: Any, opts: Any, can_curate: bool) -> SafeString:
    """Every card of a page, the URLs reversed once."""
    urls = CardUrls(opts)
    return mark_safe("".join(card_html(product, urls, can_curate) for product in products))

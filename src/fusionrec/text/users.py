"""User textualiser: attributes, recent history with ratings, tags, friends and reviews -> prose.

Give it ``split.features``: its interactions are the training positives only, so a user's text
never mentions a held-out item.
"""

from __future__ import annotations

from typing import Iterable

from fusionrec.data.schema import Dataset
from fusionrec.text.attributes import AttributeText
from fusionrec.text.budget import Section, compose
from fusionrec.text.common import item_names
from fusionrec.text.history import HistoryText, rating_scale
from fusionrec.text.options import USER_TEXT_VERSION, TextOptions
from fusionrec.text.reviews import ReviewText
from fusionrec.text.scrub import scrub_pii
from fusionrec.text.social import SocialText
from fusionrec.text.tags import TagText

VERSION = USER_TEXT_VERSION


class UserTextualiser:
    """Precomputes per-source indexes once; :meth:`text` renders one user."""

    version = VERSION

    def __init__(self, dataset: Dataset, options: TextOptions = TextOptions()) -> None:
        self.options = options
        names = item_names(dataset)
        n_items, n_users = dataset.n_items, dataset.n_users
        inter = dataset.interactions
        reviews = dataset.reviews
        scale = rating_scale(inter.rating, reviews.rating if reviews is not None else None)
        self.attributes = AttributeText(dataset.user_attributes, options.max_attribute_chars)
        self.history = HistoryText(inter, names, n_users, scale, options.max_history)
        attrs = dataset.item_attributes
        self.tags = TagText(attrs.tags if attrs else None, n_items, n_users, options.max_tags)
        self.social = SocialText(dataset.social, inter, names, n_users, options.max_friend_items)
        self.reviews = ReviewText(reviews, n_items, n_users, scale, options.max_reviews)

    def sections(self, user: int) -> list[Section]:
        out = [self.attributes.section(user, 0)]
        out.extend(self.history.sections(user, 1))
        out.append(self.tags.user_section(user, 2))
        out.append(self.social.section(user, 3))
        out.append(self.reviews.user_section(user, 4))
        return [s for s in out if s is not None and s.parts]

    def text(self, user: int) -> str:
        return scrub_pii(compose(self.sections(user), self.options.budget)).strip()


def user_texts(dataset: Dataset, options: TextOptions = TextOptions(),
               users: Iterable[int] | None = None) -> tuple[str, ...]:
    """One text per user (all users in index order, or the given indices)."""
    textualiser = UserTextualiser(dataset, options)
    indices = range(dataset.n_users) if users is None else users
    return tuple(textualiser.text(int(u)) for u in indices)

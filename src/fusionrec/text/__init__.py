"""Textualisers: every source of a :class:`~fusionrec.data.schema.Dataset` turned into compact,
PII-scrubbed prose per item and per user, within a token budget.

- :func:`fusionrec.text.items.item_texts` / :class:`~fusionrec.text.items.ItemTextualiser`
- :func:`fusionrec.text.users.user_texts` / :class:`~fusionrec.text.users.UserTextualiser`
- :func:`fusionrec.text.scrub.scrub_pii`, :class:`fusionrec.text.options.TextOptions`

One module per source (attributes, tags, kg, reviews, history, social); ``budget`` fits the
sections into the encoder's ``max_length``. Kept import-free so ``import fusionrec`` stays light.
"""

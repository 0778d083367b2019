"""A small, deterministic multi-source world with planted structure (the embedded default dataset).

Every source carries real, recoverable signal about one hidden variable: each user's *taste*, a
distribution over ``K`` topics (music genres here), and each item's *topic*.

Planted structure (all draws from one ``numpy`` generator seeded by ``seed``):

- **tastes**: user ``u`` has ``theta_u ~ Dirichlet(0.3)`` over ``K`` topics (peaked: most users
  love one or two genres); item ``i`` has one topic ``t_i`` (topics of near-equal size) and a
  popularity weight ``w_i ~ LogNormal(0, 0.8)`` and a quality ``q_i ~ Normal(0, 0.5)``.
- **interactions**: a user is drawn by activity (``LogNormal(0, 0.6)``); with probability 0.9 a
  topic ``z ~ theta_u`` then an item of topic ``z`` in proportion to ``w``, otherwise an item in
  proportion to ``w`` alone (noise). Duplicate (user, item) pairs are dropped.
- **ratings** (1..5) rise with ``theta_u[t_i]`` and ``q_i``; **timestamps** are spread over 2020.
- **item text**: a title made of topic words and a description naming the genre and mood words
  of the topic (10% of descriptions use a random topic's words instead).
- **item attributes**: ``category`` = the genre name (90%), ``price_band`` = the topic's preferred
  band (70%); 2-4 **tags** per item, each from the topic's tag words with probability 0.8.
- **user attributes**: ``age_band`` and ``region`` follow the user's favourite topic with
  probability 0.5 (weak signal), else uniform.
- **social**: undirected friendships; 80% of a user's friends share the user's favourite topic
  (homophily), so friends' items predict yours.
- **kg**: each item links to an entity with triples ``item -genre-> genre``, ``item -artist->
  artist`` (artists belong to one topic) and ``item -label-> label`` (labels 80% topic-aligned),
  plus ``artist -plays-> genre``; items of one topic meet through these entities.
- **reviews**: ~25% of interactions carry a review whose sentiment words match the rating and
  whose content words come from the item's topic.

Vectorised end to end: the default (6,000 interactions) builds in well under a second, and 10^6
interactions (with enough users and items) in seconds.
"""

from __future__ import annotations

import numpy as np

from fusionrec.data.schema import (Attributes, Dataset, ItemAttributes, ItemText, Interactions,
                                   KnowledgeGraph, Reviews, Social, Tags, Vocabulary)

# (genre name, title/content words, mood/tag words, preferred region, preferred age band)
_TOPICS: tuple[tuple[str, tuple[str, ...], tuple[str, ...], str, str], ...] = (
    ("jazz", ("saxophone", "swing", "bebop", "trumpet", "blue", "lounge"),
     ("smooth", "improvised", "smoky", "cool"), "north", "45-54"),
    ("rock", ("guitar", "riff", "thunder", "highway", "amplifier", "rebel"),
     ("loud", "anthemic", "gritty", "electric"), "west", "35-44"),
    ("electronic", ("synth", "pulse", "circuit", "neon", "bassline", "laser"),
     ("danceable", "hypnotic", "futuristic", "club"), "east", "18-24"),
    ("classical", ("symphony", "sonata", "violin", "concerto", "overture", "quartet"),
     ("elegant", "orchestral", "timeless", "grand"), "north", "55+"),
    ("hiphop", ("rhyme", "beat", "street", "flow", "cipher", "block"),
     ("lyrical", "bouncy", "urban", "bold"), "south", "18-24"),
    ("folk", ("banjo", "river", "harvest", "cabin", "fiddle", "meadow"),
     ("acoustic", "earthy", "gentle", "rustic"), "west", "45-54"),
    ("metal", ("inferno", "steel", "dragon", "abyss", "hammer", "storm"),
     ("heavy", "brutal", "fast", "dark"), "east", "25-34"),
    ("pop", ("heart", "summer", "sugar", "dream", "party", "star"),
     ("catchy", "bright", "upbeat", "radio"), "south", "25-34"),
)
_REGIONS = ("north", "south", "east", "west")
_AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55+")
_PRICE_BANDS = ("budget", "standard", "premium")
_POSITIVE = ("loved", "brilliant", "wonderful", "fantastic", "superb")
_NEUTRAL = ("okay", "decent", "average", "fine", "passable")
_NEGATIVE = ("disappointing", "boring", "awful", "weak", "dull")
_YEAR_2020 = 1577836800  # 2020-01-01T00:00:00Z


def generate(n_users: int = 300, n_items: int = 200, n_interactions: int = 6000, seed: int = 0,
             n_topics: int = len(_TOPICS), review_fraction: float = 0.25) -> Dataset:
    """The synthetic dataset described in the module docstring; deterministic by ``seed``."""
    if not 1 <= n_topics <= len(_TOPICS):
        raise ValueError(f"n_topics must be in 1..{len(_TOPICS)}, got {n_topics}")
    if n_users < 2 or n_items < n_topics:
        raise ValueError(f"need n_users >= 2 and n_items >= n_topics, got {n_users}, {n_items}")
    if not 0 < n_interactions <= 0.5 * n_users * n_items:
        raise ValueError(f"n_interactions must be in 1..{n_users * n_items // 2} "
                         f"(half the user x item grid), got {n_interactions}")
    rng = np.random.default_rng(seed)
    theta = rng.dirichlet(np.full(n_topics, 0.3), size=n_users)            # (n_users, K)
    favourite = theta.argmax(axis=1)                                         # (n_users,)
    topic = rng.permutation(np.arange(n_items) % n_topics)                   # (n_items,)
    weight = rng.lognormal(0.0, 0.8, size=n_items)
    quality = rng.normal(0.0, 0.5, size=n_items)

    users, items = _sample_interactions(rng, theta, topic, weight, n_interactions)
    affinity = theta[users, topic[items]] * n_topics  # 1.0 = average taste for that topic
    rating = np.clip(np.rint(2.5 + 1.2 * np.log1p(affinity) + quality[items]
                             + rng.normal(0, 0.6, size=len(users))), 1, 5)
    timestamp = _YEAR_2020 + rng.integers(0, 365 * 86400, size=len(users))

    user_vocab = Vocabulary(tuple(f"u{u}" for u in range(n_users)))
    item_vocab = Vocabulary(tuple(f"i{i}" for i in range(n_items)))
    return Dataset(
        name="synthetic", users=user_vocab, items=item_vocab,
        interactions=Interactions(users, items, rating=rating, timestamp=timestamp),
        user_attributes=_user_attributes(rng, favourite),
        item_attributes=_item_attributes(rng, topic, n_topics),
        item_text=_item_text(rng, topic, n_topics),
        social=_social(rng, favourite),
        kg=_knowledge_graph(rng, topic, n_topics),
        reviews=_reviews(rng, users, items, rating, timestamp, topic, review_fraction),
    )


def _sample_interactions(rng, theta, topic, weight, n_target):
    """Distinct (user, item) pairs drawn from the latent model until ``n_target`` are found."""
    n_users, n_topics = theta.shape
    n_items = len(topic)
    activity = rng.lognormal(0.0, 0.6, size=n_users)
    activity /= activity.sum()
    # Items sorted by topic; topic z occupies the cumulative-weight interval [z, z + 1).
    order = np.argsort(topic, kind="stable")
    cdf = np.zeros(n_items)
    for z in range(n_topics):
        members = topic[order] == z
        cdf[members] = z + np.cumsum(weight[order][members]) / weight[order][members].sum()
    pop_cdf = np.cumsum(weight) / weight.sum()
    theta_cdf = np.cumsum(theta, axis=1)
    keys = np.empty(0, dtype=np.int64)
    while len(keys) < n_target:
        n = int((n_target - len(keys)) * 1.3) + 64
        u = np.searchsorted(np.cumsum(activity), rng.random(n), side="right").clip(0, n_users - 1)
        z = (theta_cdf[u] < rng.random(n)[:, None]).sum(axis=1).clip(0, n_topics - 1)
        by_taste = order[np.searchsorted(cdf, z + rng.random(n), side="right").clip(0, n_items - 1)]
        by_popularity = np.searchsorted(pop_cdf, rng.random(n), side="right").clip(0, n_items - 1)
        i = np.where(rng.random(n) < 0.9, by_taste, by_popularity)
        keys = np.concatenate([keys, u.astype(np.int64) * n_items + i])
        _, first = np.unique(keys, return_index=True)
        keys = keys[np.sort(first)]  # keep first occurrences, in draw order
    keys = keys[:n_target]
    return keys // n_items, keys % n_items


def _aligned_choice(rng, preferred: np.ndarray, n_choices: int, p_aligned: float) -> np.ndarray:
    """``preferred`` with probability ``p_aligned``, else a uniform choice."""
    random = rng.integers(0, n_choices, size=len(preferred))
    return np.where(rng.random(len(preferred)) < p_aligned, preferred, random)


def _user_attributes(rng, favourite) -> Attributes:
    region_of = np.array([_REGIONS.index(t[3]) for t in _TOPICS])
    age_of = np.array([_AGE_BANDS.index(t[4]) for t in _TOPICS])
    region = _aligned_choice(rng, region_of[favourite], len(_REGIONS), 0.5)
    age = _aligned_choice(rng, age_of[favourite], len(_AGE_BANDS), 0.5)
    return Attributes({"age_band": np.asarray(_AGE_BANDS, dtype=object)[age],
                       "region": np.asarray(_REGIONS, dtype=object)[region]})


def _item_attributes(rng, topic, n_topics) -> ItemAttributes:
    genres = np.asarray([t[0] for t in _TOPICS[:n_topics]], dtype=object)
    category = genres[_aligned_choice(rng, topic, n_topics, 0.9)]
    price = _aligned_choice(rng, topic % len(_PRICE_BANDS), len(_PRICE_BANDS), 0.7)
    tag_words = sorted({w for t in _TOPICS[:n_topics] for w in t[2]})
    tag_vocab = Vocabulary(tuple(tag_words))
    topic_tags = np.array([[tag_vocab.index(w) for w in t[2]] for t in _TOPICS[:n_topics]])
    per_item = rng.integers(2, 5, size=len(topic))                          # 2..4 tags each
    tag_item = np.repeat(np.arange(len(topic)), per_item)
    own = topic_tags[topic[tag_item], rng.integers(0, topic_tags.shape[1], size=len(tag_item))]
    tag = np.where(rng.random(len(tag_item)) < 0.8, own,
                   rng.integers(0, len(tag_vocab), size=len(tag_item)))
    keys = np.unique(tag_item * len(tag_vocab) + tag)  # one assignment per (item, tag)
    tags = Tags(item=keys // len(tag_vocab), tag=keys % len(tag_vocab), vocabulary=tag_vocab)
    attributes = Attributes({"category": category,
                             "price_band": np.asarray(_PRICE_BANDS, dtype=object)[price]})
    return ItemAttributes(attributes=attributes, tags=tags)


def _item_text(rng, topic, n_topics) -> ItemText:
    n = len(topic)
    shown = _aligned_choice(rng, topic, n_topics, 0.9)  # 10% misleading descriptions
    w1, w2, m = rng.integers(0, 6, size=n), rng.integers(0, 6, size=n), rng.integers(0, 4, size=n)
    titles, descriptions = [], []
    for i in range(n):
        words, moods = _TOPICS[topic[i]][1], _TOPICS[shown[i]][2]
        titles.append(f"{words[w1[i]].title()} {words[w2[i]].title()} No. {i}")
        genre, content = _TOPICS[shown[i]][0], _TOPICS[shown[i]][1]
        mood = moods[m[i]]
        article = "An" if mood[0] in "aeiou" else "A"
        descriptions.append(f"{article} {mood} {genre} record full of {content[w2[i]]} "
                            f"and {content[w1[i]]}.")
    return ItemText({"title": tuple(titles), "description": tuple(descriptions)})


def _social(rng, favourite) -> Social:
    n_users = len(favourite)
    degree = rng.integers(2, 7, size=n_users)
    source = np.repeat(np.arange(n_users), degree)
    # A friend sharing the favourite topic (80%) or anyone (20%).
    by_topic = np.argsort(favourite, kind="stable")
    starts = np.searchsorted(favourite[by_topic], favourite[source], side="left")
    ends = np.searchsorted(favourite[by_topic], favourite[source], side="right")
    same = by_topic[starts + (rng.random(len(source)) * (ends - starts)).astype(np.int64)]
    target = np.where(rng.random(len(source)) < 0.8, same,
                      rng.integers(0, n_users, size=len(source)))
    low, high = np.minimum(source, target), np.maximum(source, target)
    keys = np.unique(low[low != high] * n_users + high[low != high])
    return Social(source=keys // n_users, target=keys % n_users, directed=False)


def _knowledge_graph(rng, topic, n_topics) -> KnowledgeGraph:
    n_items = len(topic)
    n_artists = max(n_topics, n_items // 5)
    n_labels = 2 * n_topics
    artist_topic = np.arange(n_artists) % n_topics
    genre_names = [t[0].title() for t in _TOPICS[:n_topics]]
    names = ([f"Item {i}" for i in range(n_items)] + genre_names
             + [f"The {_TOPICS[artist_topic[a]][1][a % 6].title()} {a}" for a in range(n_artists)]
             + [f"{_TOPICS[b % n_topics][2][b % 4].title()} Records {b}" for b in range(n_labels)])
    ids = ([f"item:{i}" for i in range(n_items)] + [f"genre:{g}" for g in range(n_topics)]
           + [f"artist:{a}" for a in range(n_artists)] + [f"label:{b}" for b in range(n_labels)])
    genre0, artist0, label0 = n_items, n_items + n_topics, n_items + n_topics + n_artists
    # Pick an artist of the item's own topic; labels follow topics 80% of the time.
    artist = rng.integers(0, n_artists // n_topics, size=n_items) * n_topics + topic
    label = _aligned_choice(rng, topic + n_topics * rng.integers(0, 2, size=n_items), n_labels, 0.8)
    item_ent = np.arange(n_items)
    head = np.concatenate([item_ent, item_ent, item_ent, artist0 + np.arange(n_artists)])
    relation = np.repeat([0, 1, 2, 3], [n_items, n_items, n_items, n_artists])
    tail = np.concatenate([genre0 + topic, artist0 + artist, label0 + label,
                           genre0 + artist_topic])
    return KnowledgeGraph(head=head, relation=relation, tail=tail, entities=Vocabulary(tuple(ids)),
                          relations=Vocabulary(("genre", "artist", "label", "plays")),
                          link_item=item_ent, link_entity=item_ent, entity_names=tuple(names))


def _reviews(rng, users, items, rating, timestamp, topic, fraction) -> Reviews | None:
    rows = np.flatnonzero(rng.random(len(users)) < fraction)
    if len(rows) == 0:
        return None
    r = rating[rows].astype(np.int64)
    sentiment = np.where(r >= 4, 0, np.where(r == 3, 1, 2))
    pick = rng.integers(0, 5, size=len(rows))
    word = rng.integers(0, 6, size=len(rows))
    lexicons = (_POSITIVE, _NEUTRAL, _NEGATIVE)
    texts = tuple(f"{lexicons[s][p].capitalize()} album, the {_TOPICS[t][1][w]} parts were "
                  f"{lexicons[s][(p + 1) % 5]}."
                  for s, p, t, w in zip(sentiment.tolist(), pick.tolist(),
                                        topic[items[rows]].tolist(), word.tolist()))
    return Reviews(user=users[rows], item=items[rows], text=texts, rating=rating[rows],
                   timestamp=timestamp[rows])

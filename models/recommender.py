"""Matrix factorization for implicit feedback, trained with sampled softmax. Pure torch/numpy.

score(u, i) = p_u . q_i + b_i. Training sees (user, item, weight) interactions, where the
weight already encodes the signal (purchase > add-to-cart > view) and its recency decay, and
maximises the weighted log-likelihood of each observed item against `negatives` items drawn
uniformly per batch and shared by the whole batch, plus L2 on the embeddings involved:

    loss = sum_(u,i) w_ui * -log softmax(s_ui ; s_uj for j in negatives)
           + l2 * (|p_u|^2 + |q_i|^2)

Why sampled softmax rather than BPR: BPR compares each positive with one negative, so most
steps teach the model nothing once the easy negatives are ranked low; a softmax over
hundreds of shared negatives approximates the full ranking objective that Recall/NDCG reward,
and on this machine the design's measurements put it well ahead of BPR (Recall@20 0.377 vs
0.273 on 50k x 10k). Sharing the negatives across the batch turns the cost into one
(batch x negatives) matrix product. A user bias is left out on purpose: it adds the same
constant to all of a user's items, so it cancels in any per-user ranking loss and in
recommendations.

Training is mini-batch over shuffled interaction indices (no Python loop per row),
deterministic for a seed on CPU, early-stopped on validation NDCG@k, and uses bfloat16
autocast on CUDA. Item factors take dense Adam steps (the catalogue is small); user factors
take lazy Adam steps on the rows in the batch only. A sampled negative that is the row's own
positive is masked. The starting factors are random, or (config.init = "svd") a truncated
SVD of the interaction matrix that the softmax epochs then refine: see initial_factors for
when that helps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from models.device import holds_torch_backends, torch_device
from models.early_stopping import EarlyStopping
from models.ranking import csr_from_pairs, masked_top_k, ranking_metrics

# "auto" starts from the SVD when the catalogue has this many items per factor. A truncated
# SVD with as many factors as a small catalogue has directions fits its noise: on the unit
# tests' planted shop (300 items, 64 factors) the SVD start reached Recall@20 0.28 against the
# random start's 0.43, while on `medium` (5,000 items) and Online Retail (4,054) it beat the
# random start on Recall@20 and NDCG@20 in a quarter to a third of the time.
SVD_MIN_ITEMS_PER_FACTOR = 20


@dataclass(frozen=True)
class RecommenderConfig:
    factors: int = 64
    epochs: int = 40
    batch_size: int = 4096
    negatives: int = 256
    learning_rate: float = 0.02
    # Strong per-example L2: with tens of interactions per user, weak regularisation
    # overfits (Recall@20 on planted data: 0.365 at 1e-4, 0.427 at 5e-2).
    l2: float = 0.05
    patience: int = 3  # epochs without a better validation NDCG before stopping
    init: str = "random"  # starting factors: "random" or "svd"; see initial_factors
    init_scale: float = 1.0  # standard deviation of the SVD start's factors
    init_popularity: float = 0.15  # SVD start's item bias: log popularity x score spread
    k: int = 20
    seed: int = 7
    device: str = "auto"
    score_batch_users: int = 2048  # users scored at once when recommending

    @classmethod
    def starting_from(
        cls, init: str, n_items: int | None = None, **overrides: object
    ) -> RecommenderConfig:
        """The config for a start ("random", "svd", or "auto": "svd" for catalogues of at
        least SVD_MIN_ITEMS_PER_FACTOR items per factor, else "random").

        From an SVD start the softmax epochs refine a solution rather than find one, so they
        take small steps (learning rate 0.002) against 64 negatives and stop after one epoch
        without a better validation NDCG. On `medium` that refinement is as good as 256
        negatives at the default step (Recall@20 0.533 vs 0.535) in a third of the time; a
        larger step moved away from the start.
        """
        if init == "auto":
            factors = int(overrides.get("factors", cls.factors))  # type: ignore[call-overload]
            big = n_items is not None and n_items >= SVD_MIN_ITEMS_PER_FACTOR * factors
            init = "svd" if big else "random"
        fine_tune = (
            {"learning_rate": 0.002, "negatives": 64, "patience": 1} if init == "svd" else {}
        )
        return cls(init=init, **{**fine_tune, **overrides})  # type: ignore[arg-type]


@dataclass
class FittedRecommender:
    """Trained factors as numpy arrays, plus the training history."""

    user_factors: np.ndarray
    item_factors: np.ndarray
    item_bias: np.ndarray
    config: RecommenderConfig
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0

    def scores(self, users: np.ndarray) -> np.ndarray:
        """Scores of every item for the given users: (len(users), n_items)."""
        return self.user_factors[users] @ self.item_factors.T + self.item_bias[None, :]


@holds_torch_backends
def fit_recommender(
    users: np.ndarray,
    items: np.ndarray,
    weights: np.ndarray,
    n_users: int,
    n_items: int,
    config: RecommenderConfig = RecommenderConfig(),
    validation: tuple[np.ndarray, np.ndarray] | None = None,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    exclude: tuple[np.ndarray, np.ndarray] | None = None,
) -> FittedRecommender:
    """Train the model on weighted interactions.

    Args:
        users, items, weights: one entry per (user, item) interaction; indices are 0-based.
        n_users, n_items: sizes of the index spaces (users without interactions are allowed).
        config: hyper-parameters.
        validation: held-out items per user as CSR (indptr, indices). Enables early stopping
            on NDCG@k; epoch 0 (the starting factors) competes too.
        on_epoch: called with each epoch's metrics (loss, and validation metrics if given).
        exclude: items not ranked for validation per user (CSR); default: all training items.
    """
    import torch

    device = torch_device(config.device)
    generator = torch.Generator().manual_seed(config.seed)
    user_emb, item_emb, item_bias = initial_factors(
        users, items, weights, n_users, n_items, config, generator
    )
    user_emb, item_emb = user_emb.to(device), item_emb.to(device).requires_grad_()
    item_bias = item_bias.to(device).requires_grad_()
    # Items are few (thousands): dense Adam. Users are many: a lazy Adam that touches only
    # the rows in the batch (dense Adam over 100k users dominated training time).
    item_optimizer = torch.optim.Adam([item_emb, item_bias], lr=config.learning_rate)
    user_adam = _LazyAdam(user_emb, config.learning_rate)

    # embedding lookups, not indexing: their backward sums repeated rows in a fixed order,
    # where indexing's backward (index_put with accumulate) may sum them in thread order
    lookup = torch.nn.functional.embedding
    u_all = torch.as_tensor(users, dtype=torch.long)
    i_all = torch.as_tensor(items, dtype=torch.long)
    w_all = torch.as_tensor(weights / max(float(np.mean(weights)), 1e-12), dtype=torch.float32)
    seen = exclude
    if validation is not None and exclude is None:
        seen = csr_from_pairs(users, items, n_users)
    autocast = device.type == "cuda"

    def snapshot() -> list[np.ndarray]:
        return [t.detach().cpu().numpy().copy() for t in (user_emb, item_emb, item_bias)]

    stopping = EarlyStopping(config.patience, mode="max")  # on validation NDCG
    best_parameters = snapshot()  # the start, unless an epoch validates better
    history: list[dict[str, float]] = []
    if validation is not None:
        start_score = evaluate(
            FittedRecommender(*best_parameters, config=config), validation, seen, n_items
        )
        stopping.update(0, start_score["ndcg"])
    for epoch in range(1, config.epochs + 1):
        order = torch.randperm(u_all.numel(), generator=generator)
        total = 0.0
        for start in range(0, order.numel(), config.batch_size):
            batch = order[start : start + config.batch_size]
            u, i, w = u_all[batch].to(device), i_all[batch].to(device), w_all[batch].to(device)
            negatives = torch.randint(0, n_items, (config.negatives,), generator=generator)
            negatives = negatives.to(device)
            p = user_emb[u].requires_grad_()
            bias_column = item_bias[:, None]
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=autocast):
                q = lookup(i, item_emb)
                positive = (p * q).sum(dim=1) + lookup(i, bias_column)[:, 0]
                negative = p @ lookup(negatives, item_emb).T + lookup(negatives, bias_column).T
            negative = _drop_accidental_hits(negative.float(), negatives, i, n_items)
            # -log softmax of the positive, without materialising [positive | negatives]
            positive = positive.float()
            nll = torch.logaddexp(positive, torch.logsumexp(negative, dim=1)) - positive
            penalty = config.l2 * ((p.float() ** 2).sum(dim=1) + (q.float() ** 2).sum(dim=1))
            loss = (w * (nll + penalty)).mean()
            item_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            item_optimizer.step()
            user_adam.step(u, p.grad)
            total += float(loss.detach()) * batch.numel()
        record = {"epoch": float(epoch), "loss": total / max(order.numel(), 1)}
        parameters = snapshot()
        if validation is not None:
            model = FittedRecommender(*parameters, config=config)
            record.update(
                {f"val_{k}": v for k, v in evaluate(model, validation, seen, n_items).items()}
            )
            if stopping.update(epoch, record["val_ndcg"]):
                best_parameters = parameters
        else:  # nothing to validate on: the last epoch's factors
            best_parameters, stopping.best_epoch = parameters, epoch
        history.append(record)
        if on_epoch:
            on_epoch(record)
        if stopping.should_stop:
            break
    return FittedRecommender(
        *best_parameters, config=config, history=history, best_epoch=stopping.best_epoch
    )


def initial_factors(
    users: np.ndarray,
    items: np.ndarray,
    weights: np.ndarray,
    n_users: int,
    n_items: int,
    config: RecommenderConfig,
    generator: object,
):  # noqa: ANN201 - returns a pair of torch tensors; torch is imported lazily
    """Starting user and item factors.

    "svd": a randomised truncated SVD of the user x item matrix of sqrt(weight) (V: the top
    `factors` right singular vectors; users folded in as X V), each side scaled to standard
    deviation `init_scale`. On the benchmark's split this start alone ranks better than
    the random start does after ten softmax epochs (NDCG@20 0.394 vs 0.352 on `medium`), in
    under two seconds, so the softmax epochs refine a good solution instead of finding one.
    The square root tempers heavy users and repeated purchases, as ALS's confidence does.
    The item bias starts at log(1 + the item's weight) times `init_popularity` times the
    spread of the factor scores: the SVD of the uncentred matrix captures popularity
    only roughly, in its first factor; on `medium` the bias lifted the start's Recall@20 from
    0.503 to 0.535 (ALS: 0.520).
    "random": small Gaussian factors and a zero bias.
    """
    import torch

    if config.init == "random" or min(n_users, n_items) <= config.factors:
        scale = 1.0 / np.sqrt(config.factors)
        return (
            torch.randn(n_users, config.factors, generator=generator) * scale,
            torch.randn(n_items, config.factors, generator=generator) * scale,
            torch.zeros(n_items),
        )
    if config.init != "svd":
        raise ValueError(
            f"unknown recommender init {config.init!r}: use 'svd' or 'random' "
            "(RecommenderConfig.starting_from resolves 'auto')"
        )
    values = torch.as_tensor(np.sqrt(np.maximum(weights, 0.0)), dtype=torch.float32)
    index = torch.as_tensor(np.vstack([users, items]), dtype=torch.long)
    matrix = torch.sparse_coo_tensor(
        index, values, (n_users, n_items), check_invariants=True
    ).coalesce()
    from models.device import GLOBAL_RNG_LOCK

    with GLOBAL_RNG_LOCK:  # svd_lowrank draws from torch's global generator
        torch.manual_seed(config.seed)
        _, _, right = torch.svd_lowrank(matrix, q=config.factors, niter=4)
    folded = torch.sparse.mm(matrix, right)
    user_factors = folded / folded.std().clamp_min(1e-12) * config.init_scale
    item_factors = right / right.std().clamp_min(1e-12) * config.init_scale
    # popularity as the item bias, in units of the factor scores' spread
    sample = torch.randint(0, n_users, (min(n_users, 4096),), generator=generator)
    spread = (user_factors[sample] @ item_factors.T).std()
    popularity = torch.log1p(torch.bincount(index[1], weights=values**2, minlength=n_items))
    return user_factors, item_factors, config.init_popularity * spread * popularity.float()


class _LazyAdam:
    """Adam on the rows of a large embedding that a batch touches, in place: duplicate rows'
    gradients are summed first, as a sparse gradient would be; rows not in the batch keep
    their moments (as torch's SparseAdam does)."""

    def __init__(self, weight, lr: float, betas: tuple[float, float] = (0.9, 0.999)) -> None:
        import torch

        self.weight, self.lr, self.betas, self.steps = weight, lr, betas, 0
        self.first = torch.zeros_like(weight)
        self.second = torch.zeros_like(weight)

    def step(self, rows, grad) -> None:  # noqa: ANN001 - torch tensors
        import torch

        self.steps += 1
        beta1, beta2 = self.betas
        with torch.no_grad():
            unique, inverse = torch.unique(rows, return_inverse=True)
            summed = torch.zeros(unique.numel(), grad.shape[1], device=grad.device)
            summed.index_add_(0, inverse, grad.float())
            first = self.first[unique].mul_(beta1).add_(summed, alpha=1 - beta1)
            second = self.second[unique].mul_(beta2).addcmul_(summed, summed, value=1 - beta2)
            self.first[unique], self.second[unique] = first, second
            update = (first / (1 - beta1**self.steps)) / (
                (second / (1 - beta2**self.steps)).sqrt() + 1e-8
            )
            self.weight[unique] -= self.lr * update


def _drop_accidental_hits(negative, negatives, positives, n_items: int):  # noqa: ANN001, ANN202
    """Mask the sampled negatives that are a row's own positive (-inf logit). Only the few
    rows whose positive was sampled are compared, instead of a (batch x negatives) test."""
    import torch

    sampled = torch.zeros(n_items, dtype=torch.bool, device=negative.device)
    sampled[negatives] = True
    rows = torch.nonzero(sampled[positives]).squeeze(1)
    if rows.numel() == 0:
        return negative
    row, col = torch.nonzero(negatives[None, :] == positives[rows][:, None], as_tuple=True)
    return negative.index_put((rows[row], col), torch.tensor(float("-inf"), device=negative.device))


def recommend(
    model: FittedRecommender,
    users: np.ndarray,
    k: int,
    exclude: tuple[np.ndarray, np.ndarray] | None = None,
    allowed_items: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k items and scores for each user, scoring `score_batch_users` users at a time so
    the users x items matrix never exists whole.

    Scoring and selection run in torch on the configured device (a GPU worker's CUDA), and
    only the k picks per user come back: on CPU, numpy's `argpartition` over every row was
    80% of a `large` night's recommender.

    Args:
        exclude: items never to recommend per user (CSR), e.g. bought in the last N days.
        allowed_items: boolean mask over items (e.g. active products); others are skipped.
    Returns:
        (items, scores), each (len(users), k); -1 / -inf where fewer than k items remain.
    """
    import torch

    device = torch_device(model.config.device)
    user_factors = torch.from_numpy(model.user_factors)
    item_factors = torch.from_numpy(model.item_factors).to(device)
    item_bias = torch.from_numpy(model.item_bias).to(device)
    if allowed_items is not None:
        item_bias = item_bias.masked_fill(torch.from_numpy(~allowed_items).to(device), -torch.inf)
    out_items = np.full((users.size, k), -1, dtype=np.int64)
    out_scores = np.full((users.size, k), -np.inf)
    step = model.config.score_batch_users
    with torch.no_grad():
        for start in range(0, users.size, step):
            chunk = users[start : start + step]
            rows = torch.from_numpy(np.ascontiguousarray(chunk, dtype=np.int64))
            # addmm: one pass, where `@` then `+ item_bias` writes the matrix twice
            scores = torch.addmm(item_bias, user_factors[rows].to(device), item_factors.T)
            top, values = masked_top_k(scores, k, exclude, chunk)
            out_items[start : start + chunk.size, : top.shape[1]] = top
            out_scores[start : start + chunk.size, : top.shape[1]] = values
    return out_items, out_scores


def evaluate(
    model: FittedRecommender,
    held_out: tuple[np.ndarray, np.ndarray],
    seen: tuple[np.ndarray, np.ndarray] | None,
    n_items: int,
) -> dict[str, float]:
    """Recall/NDCG/MAP@k and coverage on held-out items, ranking unseen items only."""
    indptr, _ = held_out
    users = np.flatnonzero(np.diff(indptr) > 0)
    top, _ = recommend(model, users, model.config.k, seen)
    full = np.full((indptr.size - 1, top.shape[1]), -1, dtype=np.int64)
    full[users] = top
    return ranking_metrics(full, held_out, n_items)


CSR = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class Interactions:
    """Weighted (user, item) interactions as index arrays."""

    users: np.ndarray
    items: np.ndarray
    weights: np.ndarray


@dataclass(frozen=True)
class RecommenderInputs:
    """Everything one night's recommender needs, as indices (the task maps ids to them).

    `train` is the feedback up to the holdout cutoff, `full` up to as_of; `held_out` holds
    the items each user bought after the cutoff. `exclude_at_cutoff` / `exclude_at_as_of`
    are the items bought in the exclusion window before each date, never recommended.
    `user_group` is each user's country index (-1 unknown), for cold-start lists.
    """

    n_users: int
    n_items: int
    train: Interactions
    full: Interactions
    held_out: CSR
    exclude_at_cutoff: CSR
    exclude_at_as_of: CSR
    active_items: np.ndarray
    user_group: np.ndarray
    n_groups: int
    served: np.ndarray | None = None  # users who get a list (None: all); all of them train


@dataclass
class RecommenderOutcome:
    """What a night's recommender produced: quality on the holdout, the gate, and the lists."""

    metrics: dict[str, float]  # the MF recipe on the test half of the holdout users
    baseline_metrics: dict[str, float]  # popularity on the same users and split
    promoted: bool
    gate_reason: str
    candidate_model: FittedRecommender | None  # fitted up to the cutoff and evaluated
    served_model: FittedRecommender | None  # refit on everything up to as_of, when promoted
    history: list[dict[str, float]]
    best_epoch: int
    warm_users: np.ndarray
    warm_items: np.ndarray  # (len(warm_users), k) item indices, -1 padded
    warm_scores: np.ndarray
    cold_users: np.ndarray
    cold_items: np.ndarray
    cold_scores: np.ndarray


def passes_gate(metrics: dict[str, float], baseline: dict[str, float], margin: float) -> bool:
    """Promote only if NDCG@k beats the baseline's by the relative `margin` (0.05 = 5%)."""
    if not metrics or not baseline:
        return False
    return metrics["ndcg"] > baseline["ndcg"] * (1.0 + margin) and metrics["ndcg"] > 0


def fit_evaluate_and_recommend(
    data: RecommenderInputs,
    config: RecommenderConfig,
    gate_margin: float,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> RecommenderOutcome:
    """One night: measure the recipe on a time split, gate it, and build every customer's list.

    1. Fit on `train` (up to the cutoff), early-stopping on half of the holdout users who
       had history before the cutoff; report Recall/NDCG/MAP@k and coverage for MF and for
       popularity on the other half. Both rank the same candidates: everything except what
       the user bought in the exclusion window before the cutoff, exactly as served.
    2. Gate on NDCG@k with `gate_margin`.
    3. Promoted: refit the same recipe on `full` for the best epoch count and rank items for
       every user with history. Not promoted: those users get the popularity ranking.
       Either way, never recently bought items and never inactive products.
    4. Users without history get their country's popular items (global where unknown).
    Lists are built only for the users `data.served` marks (all when None): every user's
    interactions still train the model and count for popularity.
    """
    from models.ranking import (
        group_popular_lists,
        popularity_scores,
        recommend_popular,
        split_users,
    )

    k = config.k
    warm_at_cutoff = np.zeros(data.n_users, dtype=bool)
    warm_at_cutoff[data.train.users] = True
    indptr, indices = data.held_out
    counts = np.where(warm_at_cutoff, np.diff(indptr), 0)
    evaluable = (
        np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        indices[np.repeat(warm_at_cutoff, np.diff(indptr))],
    )
    validation, test = split_users(evaluable, 0.5, config.seed)
    metrics: dict[str, float] = {}
    baseline: dict[str, float] = {}
    history: list[dict[str, float]] = []
    best_epoch = 0
    evaluated = None
    if np.diff(validation[0]).any() and np.diff(test[0]).any():
        evaluated = fit_recommender(
            data.train.users, data.train.items, data.train.weights, data.n_users, data.n_items,
            config, validation=validation, on_epoch=on_epoch, exclude=data.exclude_at_cutoff,
        )  # fmt: skip
        history, best_epoch = evaluated.history, evaluated.best_epoch
        metrics = evaluate(evaluated, test, data.exclude_at_cutoff, data.n_items)
        popularity = popularity_scores(data.train.items, data.train.weights, data.n_items)
        test_users = np.flatnonzero(np.diff(test[0]) > 0)
        top, _ = recommend_popular(popularity, test_users, k, data.exclude_at_cutoff)
        full = np.full((data.n_users, k), -1, dtype=np.int64)
        full[test_users] = top
        baseline = ranking_metrics(full, test, data.n_items)
        promoted = passes_gate(metrics, baseline, gate_margin)
        reason = (
            f"NDCG@{k} {metrics['ndcg']:.4f} vs popularity {baseline['ndcg']:.4f} "
            f"(needs > x{1 + gate_margin:.2f})"
        )
    else:
        promoted, reason = False, "no holdout purchases by customers with history: cannot evaluate"

    warm = np.zeros(data.n_users, dtype=bool)
    warm[data.full.users] = True
    to_serve = np.ones(data.n_users, dtype=bool) if data.served is None else data.served
    warm_users = np.flatnonzero(warm & to_serve)
    served = None
    if promoted:
        refit = RecommenderConfig(**{**config.__dict__, "epochs": best_epoch})
        served = fit_recommender(
            data.full.users, data.full.items, data.full.weights, data.n_users, data.n_items, refit
        )
        warm_items, warm_scores = recommend(
            served, warm_users, k, data.exclude_at_as_of, data.active_items
        )
    else:
        popularity = popularity_scores(data.full.items, data.full.weights, data.n_items)
        warm_items, warm_scores = recommend_popular(
            popularity, warm_users, k, data.exclude_at_as_of, data.active_items
        )
    group_items, group_scores = group_popular_lists(
        data.user_group[data.full.users], data.full.items, data.full.weights,
        data.n_groups, data.n_items, k, data.active_items,
    )  # fmt: skip
    cold_users = np.flatnonzero(~warm & to_serve)
    rows = np.where(data.user_group[cold_users] >= 0, data.user_group[cold_users], data.n_groups)
    return RecommenderOutcome(
        metrics=metrics,
        baseline_metrics=baseline,
        promoted=promoted,
        gate_reason=reason,
        candidate_model=evaluated,
        served_model=served,
        history=history,
        best_epoch=best_epoch,
        warm_users=warm_users,
        warm_items=warm_items,
        warm_scores=warm_scores,
        cold_users=cold_users,
        cold_items=group_items[rows],
        cold_scores=group_scores[rows],
    )

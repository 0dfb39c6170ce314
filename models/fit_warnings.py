"""Silence what statsmodels says about the fits that judge their own results.

A SARIMA candidate is kept only if `mle_retvals["converged"]` (statsmodels' ConvergenceWarning
says the same thing), a start that is not stationary or invertible is replaced by zeros and
the optimiser goes on (EstimationWarning), and an elasticity fit is kept only with a finite
estimate and standard error. Shown, these warnings are dozens of lines a night that nobody
can act on.

They used to be caught in `warnings.catch_warnings()` around each fit. That is not safe here:
the branches fit in threads of one process, and `catch_warnings` swaps the process's filter
list and warning hook on entry and puts back what it saw on exit. While one fit is inside
it, warnings from every other thread are swallowed or recorded as the fit's own, and two
overlapping blocks that exit out of order leave the process with the other's filters for
good: CI once printed 846 PuLP deprecation warnings that way. A filter added to the
process's list and never removed cannot race.
"""

from __future__ import annotations

import warnings


def ignore_expected_fit_warnings() -> None:
    """Add the process-wide filters for the warnings above (idempotent: `filterwarnings`
    moves an existing identical filter to the front instead of adding a second one).

    Called at the start of each fit function rather than once, so that a filter list put back
    by someone else's `catch_warnings` does not bring the noise back for the rest of the
    process. Only statsmodels' own categories, and numeric RuntimeWarnings raised inside
    statsmodels, are silenced: every other warning is shown as before."""
    from statsmodels.tools.sm_exceptions import (
        ConvergenceWarning,
        EstimationWarning,
        HessianInversionWarning,
        PerfectSeparationWarning,
    )

    for category in (
        ConvergenceWarning,
        EstimationWarning,
        HessianInversionWarning,
        PerfectSeparationWarning,
    ):
        warnings.filterwarnings("ignore", category=category)
    warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"statsmodels\.")

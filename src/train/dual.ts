// The dual (Lagrange multiplier) update of CRaFT (ARCHITECTURE.md §1).

/**
 * λ ← max(0, λ + η_λ·(L_ret − ε)). A non-finite retention loss leaves λ unchanged: the
 * multiplier is never moved by a loss that carries no information.
 */
export function dualUpdate(lambda: number, lambdaLr: number, retentionLoss: number, budget: number): number {
  if (!Number.isFinite(retentionLoss)) return lambda;
  return Math.max(0, lambda + lambdaLr * (retentionLoss - budget));
}

// The header line with what is left of the user's monthly AI budget.
import { formatUsd, type Spend } from '../jobs/spend';

export function budgetText(spend: Spend | null): string {
  if (!spend) return '';
  const resets = spend.resetsAt.slice(0, 10);
  if (spend.budgetUsd === null) return `${spend.plan}: ${formatUsd(spend.spentUsd)} spent this month`;
  const left = spend.remainingUsd ?? Math.max(0, spend.budgetUsd - spend.spentUsd);
  return `${spend.plan}: ${formatUsd(left)} of ${formatUsd(spend.budgetUsd)} left · resets ${resets}`;
}

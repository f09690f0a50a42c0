// What the user's plan allows and has spent (the `my_spend` view), and what each
// job cost (`job_costs`): both are security-invoker views, so RLS limits them
// to the signed-in user's own rows. Amounts are USD at the providers' list prices.
import { isFiniteNumber, isRecord } from '../shared/guards';

export interface Spend {
  plan: string;
  /** null: the plan has no monthly budget. */
  budgetUsd: number | null;
  spentUsd: number;
  /** What the user's unfinished jobs are expected to cost (counted against the budget). */
  reservedUsd: number;
  /** null when there is no budget. */
  remainingUsd: number | null;
  /** When the month's spend starts again from zero (ISO timestamp). */
  resetsAt: string;
  calls: number;
}

export interface JobCost {
  jobId: string;
  costUsd: number;
  /** Model calls over all attempts; 0 for a job that never reached a model. */
  calls: number;
  inputTokens: number;
  outputTokens: number;
  images: number;
  /** "provider/model, ..." of the calls. */
  models: string;
}

export const SPEND_COLUMNS = 'plan,budget_usd,spent_usd,reserved_usd,remaining_usd,resets_at,calls';
export const JOB_COST_COLUMNS = 'job_id,cost_usd,calls,input_tokens,output_tokens,images,models';

function amount(value: unknown): number | null {
  // PostgREST sends numeric as a JSON number; accept its text form too.
  if (isFiniteNumber(value)) return value;
  if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value))) return Number(value);
  return null;
}

export function parseSpend(row: unknown): Spend | null {
  if (!isRecord(row) || typeof row.plan !== 'string' || typeof row.resets_at !== 'string') return null;
  const spent = amount(row.spent_usd);
  if (spent === null) return null;
  return {
    plan: row.plan,
    budgetUsd: amount(row.budget_usd),
    spentUsd: spent,
    reservedUsd: amount(row.reserved_usd) ?? 0,
    remainingUsd: amount(row.remaining_usd),
    resetsAt: row.resets_at,
    calls: amount(row.calls) ?? 0,
  };
}

export function parseJobCost(row: unknown): JobCost | null {
  if (!isRecord(row) || typeof row.job_id !== 'string') return null;
  const cost = amount(row.cost_usd);
  if (cost === null) return null;
  return {
    jobId: row.job_id,
    costUsd: cost,
    calls: amount(row.calls) ?? 0,
    inputTokens: amount(row.input_tokens) ?? 0,
    outputTokens: amount(row.output_tokens) ?? 0,
    images: amount(row.images) ?? 0,
    models: typeof row.models === 'string' ? row.models : '',
  };
}

export function noCost(jobId: string): JobCost {
  return { jobId, costUsd: 0, calls: 0, inputTokens: 0, outputTokens: 0, images: 0, models: '' };
}

/** "$5.00", "$4.9955", "$0.0042": cents when the amount is whole cents, else four places (so a
 * small spend never rounds away). */
export function formatUsd(value: number): string {
  const cents = value * 100;
  return `$${value.toFixed(Math.abs(cents - Math.round(cents)) < 1e-9 ? 2 : 4)}`;
}

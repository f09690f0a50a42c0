// @vitest-environment happy-dom
import { describe, expect, it } from 'vitest';
import { JobClient } from '../../src/jobs/client';
import { BudgetExceededError, mapPostgrestError } from '../../src/jobs/errors';
import { formatUsd, parseJobCost, parseSpend } from '../../src/jobs/spend';
import { JobView } from '../../src/ui/job-view';
import { describeError } from '../../src/ui/messages';
import { budgetText } from '../../src/ui/spend-view';
import { FakeBackend } from '../support/fake-backend';

// A my_spend row as PostgREST sends it (numeric columns are JSON numbers).
const SPEND_ROW = {
  plan: 'free',
  budget_usd: 5,
  spent_usd: 0.04232,
  reserved_usd: 0.02,
  remaining_usd: 4.95768,
  resets_at: '2027-01-01T00:00:00+00:00',
  calls: 3,
};

describe('spend', () => {
  it('reads the my_spend row and a job_costs row', () => {
    expect(parseSpend(SPEND_ROW)).toEqual({
      plan: 'free',
      budgetUsd: 5,
      spentUsd: 0.04232,
      reservedUsd: 0.02,
      remainingUsd: 4.95768,
      resetsAt: '2027-01-01T00:00:00+00:00',
      calls: 3,
    });
    expect(parseSpend({ ...SPEND_ROW, budget_usd: null, remaining_usd: null })?.budgetUsd).toBeNull();
    expect(parseSpend({ ...SPEND_ROW, spent_usd: 'lots' })).toBeNull();
    expect(parseSpend(null)).toBeNull();
    const cost = { job_id: 'job-1', cost_usd: '0.00332', calls: 1, input_tokens: 1000, output_tokens: 500, images: 0, models: 'anthropic/claude-haiku-4-5' };
    expect(parseJobCost(cost)?.costUsd).toBe(0.00332);
    expect(parseJobCost({ ...cost, job_id: 7 })).toBeNull();
  });

  it('formats dollars for people', () => {
    expect(formatUsd(4.95768)).toBe('$4.9577');
    expect(formatUsd(5)).toBe('$5.00');
    expect(formatUsd(0.01)).toBe('$0.01');
    expect(formatUsd(0.00332)).toBe('$0.0033');
    expect(budgetText(parseSpend(SPEND_ROW))).toBe('free: $4.9577 of $5.00 left · resets 2027-01-01');
    expect(budgetText(parseSpend({ ...SPEND_ROW, budget_usd: null, remaining_usd: null }))).toBe('free: $0.0423 spent this month');
    expect(budgetText(null)).toBe('');
  });

  it('asks the backend for the spend and a job cost; a job without calls cost nothing', async () => {
    const backend = new FakeBackend();
    const client = new JobClient(backend);
    backend.spendRows = [SPEND_ROW];
    backend.costRows = [{ job_id: 'job-1', cost_usd: 0.042, calls: 2, input_tokens: 10, output_tokens: 1290, images: 1, models: 'gemini/gemini-2.5-flash-image' }];
    expect((await client.spend())?.remainingUsd).toBe(4.95768);
    expect(await client.jobCost('job-1')).toMatchObject({ costUsd: 0.042, calls: 2, images: 1 });
    expect(await client.jobCost('job-2')).toMatchObject({ jobId: 'job-2', costUsd: 0, calls: 0 });
    backend.spendRows = [];
    expect(await client.spend()).toBeNull();
  });

  it('maps PT402 to BudgetExceededError with spent, budget and reset time', () => {
    const message = 'budget: plan "free" allows 5.00 USD a month and 5.0123 USD is spent; it resets at 2027-01-01 00:00:00+00';
    const error = mapPostgrestError({ code: 'PT402', message, details: 'spent 5.0123 USD of 5.00 USD' }, 402);
    expect(error).toBeInstanceOf(BudgetExceededError);
    const budget = error as BudgetExceededError;
    expect([budget.spentUsd, budget.budgetUsd, budget.resetsAt]).toEqual([5.0123, 5, '2027-01-01 00:00:00+00']);
    expect(describeError(error)).toBe('Your monthly AI budget is used up ($5.0123 of $5.00). It resets at 2027-01-01 00:00:00+00.');
    const reserved = mapPostgrestError(
      { code: 'PT402', message: 'budget: plan "pro" allows 0.05 USD a month; 0.0100 USD is spent and your 2 unfinished jobs reserve 0.0400 USD; it resets at 2027-01-01 00:00:00+00' },
      402,
    ) as BudgetExceededError;
    expect([reserved.spentUsd, reserved.budgetUsd]).toEqual([0.01, 0.05]);
    expect(mapPostgrestError({ message: 'Payment Required' }, 402)).toBeInstanceOf(BudgetExceededError);
  });

  it('shows the cost of a finished job', () => {
    const view = new JobView('job-1', 'generate_design', 'a card');
    const costEl = view.el.querySelector<HTMLElement>('[data-testid="job-cost"]');
    expect(costEl?.hidden).toBe(true);
    view.showCost({ jobId: 'job-1', costUsd: 0.00932, calls: 2, inputTokens: 2000, outputTokens: 1500, images: 0, models: '' });
    expect(costEl?.hidden).toBe(false);
    expect(costEl?.textContent).toBe('Cost $0.0093 · 2 model calls');
    view.showCost({ jobId: 'job-1', costUsd: 0, calls: 0, inputTokens: 0, outputTokens: 0, images: 0, models: '' }, true);
    expect(costEl?.textContent).toBe('Cost $0.00 · cached result');
  });
});

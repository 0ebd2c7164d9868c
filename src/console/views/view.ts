/** What every page of the console is: built once per route, refreshed on every poll. */
import type { IntentionView, StatsResponse } from '../../../base/contracts/scheduler-api.js';
import type { History } from '../history.js';

/** What a refresh gets: the newest stats (polled for every view), the page's history. */
export interface Context {
  stats: StatsResponse | undefined;
  /** The deny/allow intentions, polled with the stats. */
  intentions: readonly IntentionView[];
  history: History;
  nowMs: number;
}

export interface View {
  readonly el: HTMLElement;
  /** Fetches what the view needs beyond the context, then redraws. Throws ApiFailure on an API error. */
  refresh(ctx: Context): Promise<void>;
  destroy(): void;
}

/** Integer seconds since the epoch. Injected everywhere so tests never sleep. */
export type Clock = () => number;

export const systemClock: Clock = () => Math.floor(Date.now() / 1000);

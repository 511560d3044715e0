export * from './headers.ts';
export * from './schedule.ts';
export * from './client-session.ts';
export * from './server-session.ts';
export * from './meek-mux.ts';

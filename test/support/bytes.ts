export { concat } from '../../shared/bytes.ts';

/** punycode.js 2.x (Mathias Bynens) ships no types; the part Passage uses. */
declare module 'punycode/punycode.js' {
  const punycode: {
    toUnicode(domain: string): string;
    toASCII(domain: string): string;
  };
  export default punycode;
}

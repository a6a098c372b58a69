/** A config that cannot be used: the file, the path inside it and the problem, in one line. */
export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly path: string,
    readonly problem: string,
  ) {
    super(`${file}: ${path}: ${problem}`);
    this.name = 'ConfigError';
  }
}

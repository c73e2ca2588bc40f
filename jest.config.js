// Unit tests of the panel's pure logic (tags, model); no browser, no JupyterLab runtime.
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/labextension/src'],
  testRegex: '__tests__/.*\\.spec\\.ts$',
  transform: {
    '^.+\\.tsx?$': [
      'ts-jest',
      { tsconfig: 'tsconfig.eslint.json', diagnostics: true }
    ]
  }
};

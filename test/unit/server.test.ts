import { upgradeWarning } from '../../lib/server';

describe('server-side upgrade warning', () => {
  test.each(['6.1.0-56-amd64', '6.12.95+deb12-amd64', '7.2.13-amd64', '7.3.4+deb13-amd64'])(
    'warns on %s, a kernel measured to break server-side upgrade', (release) => {
      expect(upgradeWarning(release)).toMatch(new RegExp(`^kernel ${release.replace(/[+.]/g, '\\$&')}: server-side service upgrade was measured broken`));
    });

  test.each(['7.4.0', '8.0.1-amd64', 'not-a-version'])('does not warn on %s', (release) => {
    expect(upgradeWarning(release)).toBeUndefined();
  });
});

/** The container image's extra packages: one cached image shared with the other issue-21 plugins' tests. */
export const dnsContainerPackages = [
  'accountsservice',
  'openssh-server',
  'systemd-resolved',
  'packagekit',
  'polkitd',
];

#!/bin/bash
# Normal activity of an admin/dev host for the quiet check (docs/benchmarks.md): package queries,
# shells, a small build, git, coreutils, systemd queries, python.
end=$(( $(date +%s) + ${1:-600} ))
w=$(mktemp -d "${NORMAL_DIR:-$PWD}/normal.XXXX")  # not /tmp: a build there is what proc-exec-from-tmp reports
cd "$w"
git init -q . 2>/dev/null
while [ "$(date +%s)" -lt "$end" ]; do
  dpkg -l > /dev/null; apt-cache policy bash > /dev/null 2>&1; dpkg -S /bin/ls > /dev/null
  bash -c 'for i in 1 2 3; do echo $i; done' > /dev/null
  sh -c 'ls -la /etc | wc -l' > /dev/null
  printf 'int main(){return 0;}\n' > a.c && cc -O2 -o a a.c && ./a
  printf 'all:\n\tcc -o b a.c\n' > Makefile && make -s -B > /dev/null
  git add -A > /dev/null && git -c user.email=a@b -c user.name=n commit -qm x > /dev/null 2>&1; git log --oneline | head -1 > /dev/null
  systemctl status --no-pager cron > /dev/null 2>&1; systemctl list-units --no-pager > /dev/null 2>&1
  ps aux > /dev/null; id > /dev/null; uname -a > /dev/null; df -h > /dev/null; free -m > /dev/null
  python3 -c 'import json,sys; print(json.dumps({"a":1}))' > /dev/null
  find /usr/share/doc -maxdepth 1 -name 'lib*' | head -3 > /dev/null
  grep -r "root" /etc/passwd > /dev/null; sed -n 1p /etc/hostname > /dev/null; tar czf x.tgz a.c && rm -f x.tgz
  journalctl -n 5 --no-pager > /dev/null 2>&1; ls ~ > /dev/null; sleep 2
done
cd /; rm -rf "$w"

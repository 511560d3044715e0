/** The list of proxied sites with a remove button each — the same in the popup and the options. */
export function renderSiteList(list: HTMLElement, sites: readonly string[], onRemove: (site: string) => void, empty: string): void {
  list.replaceChildren(
    ...sites.map((site) => {
      const li = document.createElement('li');
      const name = document.createElement('span');
      name.textContent = site;
      const remove = document.createElement('button');
      remove.textContent = 'remove';
      remove.dataset.site = site;
      remove.onclick = () => onRemove(site);
      li.append(name, remove);
      return li;
    }),
  );
  if (sites.length === 0) {
    const li = document.createElement('li');
    li.className = 'muted';
    li.textContent = empty;
    list.append(li);
  }
}

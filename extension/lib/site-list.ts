/** A list of rules with a remove button each (and, for temporary ones, "keep") — the same in the popup and the options. */
import { t } from './i18n.ts';
import { displayRule } from './rules.ts';

export interface RuleItem {
  rule: string;
  temporary?: boolean;
}

export function renderSiteList(list: HTMLElement, items: readonly RuleItem[], o: { onRemove(item: RuleItem): void; onKeep?(item: RuleItem): void; empty: string }): void {
  list.replaceChildren(
    ...items.map((item) => {
      const li = document.createElement('li');
      const name = document.createElement('bdi');
      name.textContent = displayRule(item.rule);
      name.className = 'site';
      li.append(name);
      if (item.temporary) {
        const tag = document.createElement('span');
        tag.className = 'tag';
        tag.textContent = t('temporaryTag');
        li.append(tag);
        if (o.onKeep) {
          const keep = document.createElement('button');
          keep.textContent = t('makePermanent');
          keep.dataset.keep = item.rule;
          keep.onclick = () => o.onKeep!(item);
          li.append(keep);
        }
      }
      const remove = document.createElement('button');
      remove.textContent = t('remove');
      remove.dataset.site = item.rule;
      remove.onclick = () => o.onRemove(item);
      li.append(remove);
      return li;
    }),
  );
  if (items.length === 0) {
    const li = document.createElement('li');
    li.className = 'muted';
    li.textContent = o.empty;
    list.append(li);
  }
}

package httpmatch

// links are an element's neighbours on one intrusive list.
type links[T any] struct{ prev, next *T }

// list is an intrusive doubly-linked list: its elements carry their links
// (at finds them), so that moving one allocates nothing.
type list[T any] struct {
	head, tail *T
	at         func(*T) *links[T]
}

func (l *list[T]) pushBack(e *T) {
	k := l.at(e)
	k.prev, k.next = l.tail, nil
	if l.tail != nil {
		l.at(l.tail).next = e
	} else {
		l.head = e
	}
	l.tail = e
}

// remove takes e off the list; an element not on it is left alone.
func (l *list[T]) remove(e *T) {
	k := l.at(e)
	if k.prev != nil {
		l.at(k.prev).next = k.next
	} else if l.head == e {
		l.head = k.next
	}
	if k.next != nil {
		l.at(k.next).prev = k.prev
	} else if l.tail == e {
		l.tail = k.prev
	}
	k.prev, k.next = nil, nil
}
